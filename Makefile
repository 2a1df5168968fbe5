PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/weekly-bot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/weekly-bot
	$(BIN)/weekly-bot demo

test: $(BIN)/weekly-bot
	$(BIN)/python -m pytest

lint: $(BIN)/weekly-bot
	$(BIN)/ruff check bot handlers storage prompts tests bench
	$(BIN)/mypy
	@if [ -f ../shared/tools/import-rules.py ]; then $(BIN)/python ../shared/tools/import-rules.py .; fi

bench: $(BIN)/weekly-bot
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) *.egg-info
