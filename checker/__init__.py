"""Mailpreflight: pre-send email encryption and deliverability checks."""
