"""Alembic migrations: the only place tickcast's schema is created or changed.

Shipped inside the installed package so an installed ``tickcast`` can create its database anywhere;
``service.db.upgrade`` runs them programmatically.
"""
