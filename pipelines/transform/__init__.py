"""The store's layers in SQL (staging → intermediate → marts), run by build.py; sql/tests hold
checks that must return no rows.
"""
