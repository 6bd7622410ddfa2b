"""Report figures drawn with matplotlib's object API (``Figure``, no pyplot, no Qt).

Used by the command line (``report``) and by the app's Reports tab."""
