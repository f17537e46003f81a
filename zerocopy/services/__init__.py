"""Application services: the business rules the API and the CLI share.

Plain async functions over an SQLAlchemy session, always scoped to one workspace: an object
of another workspace is ``not_found``, exactly like one that does not exist. Each function
that changes state commits before it returns.
"""
