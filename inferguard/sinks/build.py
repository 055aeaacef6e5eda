"""Notification channels from settings (called by the composition root)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from inferguard.config import NotifySettings
from inferguard.errors import ConfigError
from inferguard.protocols import StateStore
from inferguard.sinks.alertmanager import AlertmanagerChannel
from inferguard.sinks.endpoints import parse_endpoints
from inferguard.sinks.notifier import Channel, Notifier
from inferguard.sinks.policy import PolicyConfig
from inferguard.sinks.slack import SlackBotChannel, SlackWebhookChannel
from inferguard.sinks.webhook import WebhookChannel


def build_channels(s: NotifySettings, *, transport: httpx.AsyncBaseTransport | None = None) -> list[Channel]:
    t = s.notify_timeout_seconds
    out: list[Channel] = []
    if s.slack_webhook_url is not None:
        out.append(SlackWebhookChannel(s.slack_webhook_url.get_secret_value(), public_url=s.public_url,
                                       transport=transport, timeout_s=t))
    if s.slack_bot_token is not None:
        if not s.slack_channel:
            raise ConfigError("INFERGUARD_SLACK_CHANNEL", "required with INFERGUARD_SLACK_BOT_TOKEN")
        out.append(SlackBotChannel(s.slack_bot_token.get_secret_value(), s.slack_channel, public_url=s.public_url,
                                   base_url=s.slack_api_url, timeout_s=t))
    raw = s.webhook_url.get_secret_value() if s.webhook_url else None
    for i, ep in enumerate(parse_endpoints(raw, "INFERGUARD_WEBHOOK_URL")):
        out.append(WebhookChannel(ep, name=f"webhook-{i}", public_url=s.public_url, transport=transport, timeout_s=t))
    raw = s.alertmanager_url.get_secret_value() if s.alertmanager_url else None
    for i, ep in enumerate(parse_endpoints(raw, "INFERGUARD_ALERTMANAGER_URL")):
        out.append(AlertmanagerChannel(ep, name=f"alertmanager-{i}", public_url=s.public_url,
                                       resend_every=s.alertmanager_resend_seconds, transport=transport, timeout_s=t))
    return out


def build_notifier(s: NotifySettings, store: StateStore, *, clock: Callable[[], float] = time.time,
                   transport: httpx.AsyncBaseTransport | None = None) -> Notifier | None:
    """None when no channel is configured: nothing to notify."""
    channels = build_channels(s, transport=transport)
    if not channels:
        return None
    return Notifier(channels, store, clock=clock,
                    policy=PolicyConfig(repeat_s=s.notify_repeat_interval_seconds, sustain_s=s.notify_sustain_seconds),
                    rate_per_minute=s.notify_rate_per_minute, max_backoff_s=s.notify_max_backoff_seconds,
                    timeout_s=s.notify_timeout_seconds * 3)
