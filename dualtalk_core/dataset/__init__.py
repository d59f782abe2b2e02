"""Conversation corpora in the published DualTalk layout, read as clips and training windows."""
