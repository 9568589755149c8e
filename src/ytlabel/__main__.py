from ytlabel.cli import run

if __name__ == "__main__":  # not when a spawned reader process (data/parallel.py) imports the main module
    run()
