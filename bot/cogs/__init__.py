"""One cog per command group; each is a thin layer over storage/."""

EXTENSIONS = (
    "bot.cogs.errors",
    "bot.cogs.setup",
    "bot.cogs.dataset",
    "bot.cogs.train",
    "bot.cogs.model",
    "bot.cogs.budget",
    "bot.cogs.help",
)
