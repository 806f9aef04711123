"""giftstream: a real-time gifting server for live streams."""
