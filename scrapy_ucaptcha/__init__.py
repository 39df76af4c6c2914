"""Automatic CAPTCHA solving for Scrapy through the uCaptcha API."""

__version__ = "0.1.0.dev0"
