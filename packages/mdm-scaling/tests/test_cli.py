from mdm_scaling.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "mdm-scaling" in capsys.readouterr().out
