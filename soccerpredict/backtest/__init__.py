"""Walk-forward backtest: one fold per season, everything fitted inside the fold."""
