"""Offline test doubles: a uCaptcha API simulator and a demo challenge site, both on loopback."""
