Attribute VB_Name = "Buttons"
' The team workbook's buttons: one macro per button, each a thin call into Python
' through xlwings' RunPython (the xlwings module is part of this workbook's project).
' crm_batch builds xl/vbaProject.bin from this file: edit it here, not in Excel.
Option Explicit

Public Sub RefreshData()
    RunPython "import crm_batch.buttons as b; b.refresh()"
End Sub

Public Sub SaveFollowups()
    RunPython "import crm_batch.buttons as b; b.save_followups()"
End Sub

Public Sub MakeMyPdf()
    RunPython "import crm_batch.buttons as b; b.make_pdf()"
End Sub
