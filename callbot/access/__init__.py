"""Who may use the console and the API: users with roles, passwords, sessions, API tokens."""
