"""Sinks: where incident events go (one module each). Every sink implements
:class:`inferguard.protocols.Sink`; :mod:`inferguard.runtime.build` decides which ones run. The notification
sink (Slack, Alertmanager-compatible webhooks, Alertmanager) hears each incident once per change."""

from inferguard.sinks.alertmanager import AlertmanagerChannel
from inferguard.sinks.endpoints import Endpoint, parse_endpoints
from inferguard.sinks.notifier import Channel, Notifier
from inferguard.sinks.policy import NotifyPolicy, PolicyConfig
from inferguard.sinks.silences import add_silence, expire_silence, list_silences, parse_duration
from inferguard.sinks.slack import SlackBotChannel, SlackWebhookChannel
from inferguard.sinks.webhook import WebhookChannel

__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "Endpoint",
    "Notifier",
    "NotifyPolicy",
    "PolicyConfig",
    "SlackBotChannel",
    "SlackWebhookChannel",
    "WebhookChannel",
    "add_silence",
    "expire_silence",
    "list_silences",
    "parse_duration",
    "parse_endpoints",
]
