"""Each chat service's own message layout for one notification: Slack's Block Kit,
Discord's embeds, a Microsoft Teams Adaptive Card, Mattermost's attachments.

Every service caps its fields; text is cut to fit here, so a long notification is posted
shortened rather than refused. What a producer wrote is never read as markup that reaches
people it was not meant for: Slack's control characters are escaped and Discord is told
to resolve no mention, so a message holding "@everyone" pings nobody.
"""

from __future__ import annotations

from typing import Any

from tidings.delivery.chat.message import ChatMessage, FeedKind, Link

# Slack: a header's text, a section's text, a button's label, a URL (Block Kit's limits).
SLACK_HEADER = 150
SLACK_SECTION = 3000
SLACK_BUTTON = 75
SLACK_URL = 3000
# Discord: an embed's title and description; the message's own content.
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_CONTENT = 2000
# Mattermost's attachment text, well under its post limit of 16,383 characters.
MATTERMOST_TEXT = 8000
# Discord's embed side bar by priority (red for critical, orange for high).
DISCORD_COLOURS = {"critical": 0xD93025, "high": 0xF29900}


def cut(text: str, limit: int) -> str:
    """At most `limit` code points, ending with an ellipsis when shortened."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def links(note: ChatMessage) -> list[Link]:
    """The primary link (labelled "Open") then the actions, without repeats."""
    found: list[Link] = []
    if note.url:
        found.append(Link("Open", note.url))
    for action in note.actions:
        if all(action.url != link.url or action.label != link.label for link in found):
            found.append(action)
    return found


def slack_escape(text: str) -> str:
    """Slack reads `&`, `<` and `>` as markup (links, mentions like <!channel>)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(note: ChatMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": cut(note.title, SLACK_HEADER), "emoji": True}},
    ]
    if note.message:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": cut(slack_escape(note.message), SLACK_SECTION)}})
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": cut(link.label, SLACK_BUTTON)},
         "url": link.url, "action_id": f"tidings-link-{index}"}
        for index, link in enumerate(links(note)) if len(link.url) <= SLACK_URL
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": cut(slack_escape(f"{note.channel} / {note.type}"), 300)}]})
    return blocks


def slack_body(note: ChatMessage) -> dict[str, Any]:
    """The part of a Slack message both ways of posting share (the DM adds `channel`)."""
    return {"text": cut(slack_escape(note.fallback), SLACK_SECTION),
            "blocks": slack_blocks(note), "unfurl_links": False}


def discord_body(note: ChatMessage) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": cut(note.title, DISCORD_TITLE),
        "description": cut(note.message, DISCORD_DESCRIPTION),
        "footer": {"text": cut(f"{note.channel} / {note.type}", 2048)},
    }
    if note.url:
        embed["url"] = note.url
    if note.priority in DISCORD_COLOURS:
        embed["color"] = DISCORD_COLOURS[note.priority]
    extra = [link for link in links(note) if link.url != note.url]
    if extra:
        embed["fields"] = [{"name": cut(link.label, 256), "value": cut(link.url, 1024)}
                           for link in extra[:25]]
    return {"content": cut(note.fallback, DISCORD_CONTENT), "embeds": [embed],
            "allowed_mentions": {"parse": []}}


def teams_body(note: ChatMessage) -> dict[str, Any]:
    """An Adaptive Card in a message, the form both Teams' incoming webhooks and its
    Workflows webhooks take."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": note.title, "weight": "Bolder", "size": "Medium",
             "wrap": True},
            {"type": "TextBlock", "text": note.message, "wrap": True},
            {"type": "TextBlock", "text": f"{note.channel} / {note.type}", "isSubtle": True,
             "size": "Small", "wrap": True},
        ],
    }
    actions = [{"type": "Action.OpenUrl", "title": link.label, "url": link.url}
               for link in links(note)]
    if actions:
        card["actions"] = actions
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def mattermost_body(note: ChatMessage) -> dict[str, Any]:
    """An attachment, not the post's text: Mattermost resolves @-mentions in a post's
    text, and a notification's words are not meant to page a channel."""
    lines = [cut(note.message, MATTERMOST_TEXT)] if note.message else []
    lines += [f"[{link.label}]({link.url})" for link in links(note) if link.url != note.url]
    attachment: dict[str, Any] = {
        "fallback": cut(note.fallback, 3000),
        "title": cut(note.title, 3000),
        "text": "\n\n".join(lines),
        "footer": f"{note.channel} / {note.type}",
    }
    if note.url:
        attachment["title_link"] = note.url
    if note.priority in DISCORD_COLOURS:
        attachment["color"] = f"#{DISCORD_COLOURS[note.priority]:06X}"
    return {"attachments": [attachment]}


def feed_body(kind: FeedKind, note: ChatMessage) -> dict[str, Any]:
    if kind is FeedKind.SLACK:
        return slack_body(note)
    if kind is FeedKind.DISCORD:
        return discord_body(note)
    if kind is FeedKind.TEAMS:
        return teams_body(note)
    return mattermost_body(note)
