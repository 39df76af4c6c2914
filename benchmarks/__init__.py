"""Benchmarks of scrapy-ucaptcha: ``python -m benchmarks`` (see ``benchmarks/README.md``).

The demo site and the uCaptcha simulator run in their own processes on 127.0.0.1; every crawl is a
real ``scrapy crawl`` process of the small project in :mod:`benchmarks.project`.
"""
