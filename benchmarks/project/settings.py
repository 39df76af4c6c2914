"""Settings of the benchmark crawls; the runner adds ``-s`` settings per scenario and variant.

``BENCH_VARIANT`` picks the downloader middleware under test (see :mod:`.instrument`):
``ucaptcha`` (scrapy-ucaptcha), ``none``, ``reference`` (awaits the solve in process_response) or
``holder`` (keeps challenged requests alive, nothing else: the memory baseline).
"""

BOT_NAME = "bench"
SPIDER_MODULES = ["benchmarks.project.spider"]
ADDONS = {"benchmarks.project.instrument.BenchAddon": 0}

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"
USER_AGENT = "scrapy-ucaptcha-benchmarks"
# one host (127.0.0.1) serves every page: let CONCURRENT_REQUESTS alone decide concurrency
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16

BENCH_VARIANT = "ucaptcha"
BENCH_RESULT = ""  # path of the JSON file the crawl writes its figures to
BENCH_PARK_TARGET = 0  # memory scenario: close the spider once this many requests are held
BENCH_RSS_EVERY = 0.0  # scale scenario: sample VmRSS every this many seconds (0: never)
BENCH_MICRO = False  # time detect() and process_response on the crawl's plain pages at the end

UCAPTCHA_ALLOW_INSECURE_HTTP = True  # the simulator listens on plain http://127.0.0.1
