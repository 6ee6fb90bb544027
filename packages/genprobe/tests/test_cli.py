from genprobe.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "genprobe" in capsys.readouterr().out
