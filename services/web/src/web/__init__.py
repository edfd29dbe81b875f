"""The web app of ASF Samverkan (SPEC 3.4): server-rendered pages over the three APIs."""
