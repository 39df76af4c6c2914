"""The Scrapy project the benchmark crawls run: ``scrapy crawl bench`` with
``SCRAPY_SETTINGS_MODULE=benchmarks.project.settings``."""
