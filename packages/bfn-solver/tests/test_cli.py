from bfn_solver.cli import main


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "bfn-solver" in capsys.readouterr().out
