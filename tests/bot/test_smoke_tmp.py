from tests.bot.conftest import World


def test_budget_show(world: World) -> None:
    i = world.slash("budget show", guild=world.team_a)
    assert "600 training minutes left" in i.text(), i.messages()
