"""The CLI-wide rule for expected mistakes, shared by the tests that check one: the command exits 2 (checked
by the caller) and its stderr holds exactly one `ytlabel: error:` line and no traceback."""


def one_error_line(capsys) -> str:
    """The single `ytlabel: error:` line of what the command just wrote to stderr (fails otherwise)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ytlabel: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
