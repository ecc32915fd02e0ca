"""Webhook events POSTed to producers' registered URLs (Standard Webhooks)."""
