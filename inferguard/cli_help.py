"""Help text an operator can read: metavars instead of Python types, no `<bool>` on flags, no `{url}`,
and defaults that come from settings shown as what they are in force.

Typer prints each parameter's Python type (`<float>`, `<list[str]>`, `<bool>`) beside it and wraps a
required argument's name in braces in the usage line. A group built with ``cls=ReadableGroup`` (and
every command in it) shows a parameter's metavar (``SECONDS``, ``URL``) where one is given, nothing for
flags, and ``URL`` / ``[URL]...`` in the usage line, as click-based tools usually do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# "command.option" -> the default in force, worded for help (read from settings when help is shown).
SETTING_DEFAULTS: dict[str, Callable[[], str]] = {}


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already shows the metavar

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        return self.metavar if self.metavar is not None else super().display_type_rich(ctx)

    def _extract_default_help_str(self, *, ctx: Any) -> Any:
        effective = SETTING_DEFAULTS.get(f"{ctx.command.name}.{self.name}")
        if effective is not None:
            return effective()
        return super()._extract_default_help_str(ctx=ctx)


def _readable(params: list[Any]) -> None:
    for p in params:
        if type(p) is TyperArgument:
            p.__class__ = _Argument
        elif type(p) is TyperOption:
            p.__class__ = _Option


class ReadableCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _readable(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        opt = super().get_help_option(ctx)
        _readable([opt])
        return opt


class ReadableGroup(TyperGroup):
    """A group whose own options and every subcommand's (nested groups included) read as above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _readable(self.params)
        _commands_readable(self)

    def get_help_option(self, ctx: Any) -> Any:
        opt = super().get_help_option(ctx)
        _readable([opt])
        return opt


def _commands_readable(group: TyperGroup) -> None:
    for cmd in group.commands.values():
        if type(cmd) is TyperCommand:
            cmd.__class__ = ReadableCommand
            _readable(cmd.params)
        elif type(cmd) is TyperGroup:
            cmd.__class__ = ReadableGroup
            _readable(cmd.params)
            _commands_readable(cmd)
