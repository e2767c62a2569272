"""The pattern language: grammar, parser, AST, checks and the compiler to NFA programs."""
