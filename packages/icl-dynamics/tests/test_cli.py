from icl_dynamics.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "icl-dynamics" in capsys.readouterr().out
