"""Chat: a user's Slack direct message, and team feeds posted to a channel's incoming
webhook (Slack, Discord, Microsoft Teams, Mattermost)."""
