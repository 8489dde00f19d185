"""The command group class of every ``goldloop`` group: command lists show whole sentences.

Click shortens each command's first sentence to fit one line and cuts it off mid-phrase
("Compare experiments example by example with a baseline:..."); here the list shows the whole
first sentence, wrapped under the command's name.
"""

from __future__ import annotations

import click

_WHOLE = 10_000  # no first sentence is this long: nothing is cut


class Group(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(_WHOLE)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
