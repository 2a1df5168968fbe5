"""Feishu / Lark through lark-oapi: `app` (the edge and the sender, which load the SDK) and `plugin` (its
registry entry, which loads nothing until a Feishu credential is set)."""
