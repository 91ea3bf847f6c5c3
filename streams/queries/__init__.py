"""SQL builders for product teams: each returns SQL plus bound parameters, never formatted input."""
