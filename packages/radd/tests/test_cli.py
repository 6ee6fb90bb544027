from radd.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "radd" in capsys.readouterr().out
