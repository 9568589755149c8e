from ytlabel.cli import run

run()
