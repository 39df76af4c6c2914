"""An example Scrapy project that solves CAPTCHAs with scrapy-ucaptcha."""
