from i2v_leak.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "i2v-leak" in capsys.readouterr().out
