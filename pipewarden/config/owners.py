"""Who owns a table or stream: where its alerts go, whom they mention, what dashboards call it.

`owner` is written either as one string, the Slack channel of its alerts (`#shop-data`, as
before), or as a mapping naming the channel, the people and groups to mention in the parent
message of each incident's thread, and the name dashboards and the exporter show.
"""

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: What Slack renders as a mention: a person (`<@U…>`, `<@W…>`), a user group
#: (`<!subteam^S…>`, optionally `|@handle`), or `<!here>` / `<!channel>`.
MENTION = re.compile(r"<@[UW][A-Z0-9]+>|<!subteam\^[A-Z0-9]+(\|@?[\w.-]+)?>|<!(here|channel)>")


class OwnerConfig(BaseModel):
    """An owner written as a mapping: `{channel: "#shop-data", mention: ["<@U024BE7LH>"]}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How people call the owner (dashboards, the exporter); unset: the channel.
    name: str | None = Field(default=None, min_length=1)
    #: The Slack channel of the alerts; unset: `slack.default_channel`.
    channel: str | None = Field(default=None, min_length=1)
    #: Mentioned in the parent message of each incident's thread (never in its replies).
    mention: list[str] = Field(default_factory=list)

    @field_validator("mention", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("mention")
    @classmethod
    def _slack_mentions(cls, value: list[str]) -> list[str]:
        for mention in value:
            if not MENTION.fullmatch(mention):
                raise ValueError(
                    f"{mention!r} is not a Slack mention: write <@U…> for a person, "
                    "<!subteam^S…> for a user group (IDs from Slack's profile menu), "
                    "or <!here>"
                )
        return value


#: What `owner` may be in the configuration.
Owner = str | OwnerConfig


def owner_name(owner: Owner | None) -> str | None:
    """The display name of a table's or stream's configured `owner`; None when it has none.

    A plain string (a channel such as `#shop-data`) is shown as written; a mapping by its
    `name`, else its channel.
    """
    if owner is None:
        return None
    if isinstance(owner, OwnerConfig):
        return owner.name or owner.channel
    return owner.strip() or None


def owner_channel(owner: Owner | None) -> str | None:
    """The Slack channel of the owner's alerts; None for the default channel."""
    if isinstance(owner, OwnerConfig):
        return owner.channel
    return (owner or "").strip() or None


def owner_mentions(owner: Owner | None) -> list[str]:
    """The people and groups the owner's incident messages mention."""
    return list(owner.mention) if isinstance(owner, OwnerConfig) else []
