import time, pytest
from apps.media.services.fetch import fetch_url
from tests.media.test_fetch import *  # noqa
def test_dbg(server, settings):
    settings.BAGGINTAG_URL_TIMEOUT = 1.0
    t=time.monotonic()
    try:
        fetch_url(server.url("/drip-headers"))
    except Exception as e:
        print("ERR", type(e), e, e.__cause__, time.monotonic()-t)
