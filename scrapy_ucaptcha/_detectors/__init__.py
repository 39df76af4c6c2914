"""Implementation of :mod:`scrapy_ucaptcha.detection`; import the public names from there."""
