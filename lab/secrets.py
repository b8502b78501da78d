"""Secret references: keyring:SERVICE/USER, env:NAME, file:/PATH, command:ARGV… (TO BE WRITTEN)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRef:
    scheme: str  # keyring | env | file | command
    value: str  # what follows the colon; a reference, not the secret

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"
