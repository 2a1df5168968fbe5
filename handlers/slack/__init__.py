"""Slack through Bolt: `app` (the edge and the sender, which load the SDK) and `plugin` (its registry entry,
which loads nothing until a Slack credential is set)."""
