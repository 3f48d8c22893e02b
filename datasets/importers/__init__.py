"""Importers: WebPlotDigitizer files and the literature dossier into evidence rows."""
