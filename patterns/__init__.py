"""The shipped rule library (data only): DSL and YAML rule files with their tests."""
