"""Scrapy commands: ``COMMANDS_MODULE = "scrapy_ucaptcha.commands"`` replaces ``scrapy crawl``
with :mod:`scrapy_ucaptcha.commands.crawl`."""
