# The two quick-start commands. Both set everything up on a fresh machine first.
.PHONY: demo test setup

setup:
	@./scripts/setup.sh

demo: setup
	@./scripts/demo.sh

test: setup
	@./scripts/test.sh
