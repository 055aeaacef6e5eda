"""Slack: an incoming webhook (one Block Kit message per notification), or a bot through slack_sdk's
async Web API client (one message per incident; updates and the resolution in its thread, the parent
edited to show the current status)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from inferguard.errors import ConfigError, SinkError
from inferguard.sinks import render
from inferguard.sinks.endpoints import Endpoint
from inferguard.sinks.http import client, post_json
from inferguard.sinks.policy import Notice

_EMOJI = {"firing": ":rotating_light:", "severity": ":arrow_up_down:", "repeat": ":repeat:",
          "resolved": ":white_check_mark:"}


def blocks(notice: Notice, public_url: str | None) -> list[dict[str, Any]]:
    inc = notice["incident"]
    kind = notice["kind"]
    extra = f"was {notice['previous_severity']}" if notice.get("previous_severity") else ""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": render.headline(kind, inc, extra)[:150]}},
        {"type": "section", "fields": [_field("Severity", str(inc.get("severity", "?"))),
                                       _field("Target", render.target_name(inc)),
                                       _field("Engine", str(inc.get("engine", "?"))),
                                       _field("Model", str(inc.get("model") or "?"))]},
    ]
    anomalies = render.anomaly_lines(inc)
    if anomalies:
        out.append(_section("*Anomalies*\n" + "\n".join(f"• {a}" for a in anomalies)))
    out.append(_section("*" + render.diagnosis_line(inc).replace(":", ":*", 1)))
    advisories = render.advisory_lines(inc)
    if advisories:
        out.append(_section("*Advisories* (advice only; nothing was changed)\n"
                            + "\n".join(f"• {a}" for a in advisories)))
    context = [f"{_EMOJI.get(kind, '')} {kind} · incident `{inc.get('id', '?')}`"]
    url = render.incident_url(inc, public_url)
    if url:
        context.append(f"<{url}|open in InferGuard>")
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return out


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{name}*\n{value}"}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


class SlackWebhookChannel:
    resend_every: float | None = None

    def __init__(self, url: str, *, public_url: str | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = 10.0) -> None:
        self.name = "slack-webhook"
        # The URL itself is the credential: it is never shown, not even its path.
        self.endpoint = Endpoint(url)
        self.public_url = public_url
        self._http = client(transport, timeout_s)

    async def deliver(self, notice: Notice, memo: dict[str, Any]) -> None:
        body = {"text": render.headline(notice["kind"], notice["incident"]), "blocks": blocks(notice, self.public_url)}
        try:
            await post_json(self._http, self.endpoint, body, what="slack webhook")
        except SinkError as exc:
            raise SinkError(str(exc).replace(self.endpoint.display, "(incoming webhook)")) from None

    async def aclose(self) -> None:
        await self._http.aclose()


class SlackBotChannel:
    """Posts with ``chat.postMessage``; replies in the incident's thread and edits the parent with
    ``chat.update``. Each step is remembered in the channel's memo, so a retry never posts twice."""

    resend_every: float | None = None

    def __init__(self, token: str, channel: str, *, public_url: str | None = None,
                 base_url: str = "https://slack.com/api/", timeout_s: float = 10.0) -> None:
        try:
            from slack_sdk.web.async_client import AsyncWebClient
        except ImportError:  # pragma: no cover - the extra is in dev
            raise ConfigError("INFERGUARD_SLACK_BOT_TOKEN",
                              "needs slack_sdk: pip install 'inferguard[slack]'") from None
        self.name = "slack-bot"
        self.channel = channel
        self.public_url = public_url
        self._client = AsyncWebClient(token=token, base_url=base_url, timeout=int(max(1, timeout_s)))

    async def deliver(self, notice: Notice, memo: dict[str, Any]) -> None:
        inc = notice["incident"]
        iid = str(inc.get("id"))
        threads: dict[str, Any] = memo.setdefault("threads", {})
        done: dict[str, list[str]] = memo.setdefault("done", {})
        steps = done.setdefault(notice["key"], [])
        text = render.headline(notice["kind"], inc)
        body = blocks(notice, self.public_url)
        thread = threads.get(iid)
        if thread is None:
            resp = await self._call("chat_postMessage", channel=self.channel, text=text, blocks=body)
            threads[iid] = {"channel": resp["channel"], "ts": resp["ts"]}
        else:
            if "reply" not in steps:
                await self._call("chat_postMessage", channel=thread["channel"], thread_ts=thread["ts"], text=text,
                                 blocks=body)
                steps.append("reply")
            parent = {**notice, "kind": "resolved" if notice["kind"] == "resolved" else "firing"}
            await self._call("chat_update", channel=thread["channel"], ts=thread["ts"],
                             text=render.headline(parent["kind"], inc), blocks=blocks(parent, self.public_url))
        done.pop(notice["key"], None)
        if notice["kind"] == "resolved":
            threads.pop(iid, None)

    async def _call(self, method: str, **kwargs: Any) -> Mapping[str, Any]:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            resp = await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise SinkError(f"slack {method}: {exc.response.get('error', 'error')}") from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise SinkError(f"slack {method}: {type(exc).__name__}") from None
        except Exception as exc:  # aiohttp's own errors are not OSError
            if type(exc).__module__.startswith("aiohttp"):
                raise SinkError(f"slack {method}: {type(exc).__name__}") from None
            raise
        return resp.data if isinstance(resp.data, dict) else {}

    async def aclose(self) -> None:
        return None
