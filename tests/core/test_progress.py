from src.core.progress import progress


def test_progress_yields_every_item_and_prints_nothing_off_a_terminal(capsys):
    assert list(progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert list(progress(iter("ab"), "letters", total=2)) == ["a", "b"]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # pytest's stderr is not a TTY
