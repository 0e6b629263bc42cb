"""Front ends without a cockpit: the headless run and printer, the plan commands, the session options of every front end."""
