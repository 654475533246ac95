"""The VBA project of a team workbook, written from the .bas sources: the project
streams (MS-OVBA, ``project``), their compression (``compression``) and the compound
file that holds them (MS-CFB, ``cfb``)."""
