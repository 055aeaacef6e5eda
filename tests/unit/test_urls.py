"""Credentials in target URLs are split off when the Target is built (inferguard/urls.py)."""

from __future__ import annotations

import pytest

from inferguard.models import Target
from inferguard.urls import redact_urls, split_credentials


@pytest.mark.parametrize(("url", "safe"), [
    ("http://u:pw@h:8000/metrics", "http://h:8000/metrics"),
    ("http://apikeyonly@h/metrics", "http://h/metrics"),
    ("https://h/metrics?token=t0k", "https://h/metrics?token=REDACTED"),
    ("https://h/metrics?access_token=t0k&x=1", "https://h/metrics?access_token=REDACTED&x=1"),
    ("https://h/metrics?api_key=k&API-KEY=k2&X-Amz-Signature=s&pass=p",
     "https://h/metrics?api_key=REDACTED&API-KEY=REDACTED&X-Amz-Signature=REDACTED&pass=REDACTED"),
    ("http://a:b@h/m?jwt=j#frag", "http://h/m?jwt=REDACTED"),
])
def test_credentials_are_split_off(url: str, safe: str) -> None:
    got, full = split_credentials(url)
    assert (got, full) == (safe, url)
    t = Target.from_url(url)
    assert t.url == safe and t.request_url == url
    assert "pw" not in repr(t) and "t0k" not in repr(t) and url not in repr(t)


def test_a_url_without_credentials_is_left_as_it_is() -> None:
    assert split_credentials("http://h:8000/metrics?format=text") == ("http://h:8000/metrics?format=text", None)
    assert Target.from_url("http://h/metrics").request_url is None


def test_unparseable_urls_say_nothing() -> None:
    assert split_credentials("http://[::1/metrics?token=x") == ("http://REDACTED", "http://[::1/metrics?token=x")


def test_endpoint_lists_are_redacted_item_by_item() -> None:
    assert redact_urls("http://u:p@a/m,http://b/m?token=z") == "http://a/m,http://b/m?token=REDACTED"
