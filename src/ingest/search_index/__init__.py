"""The index as a product: its template and names (``template``), migrations between versions (``migrate``),
searching it (``query``), the document's JSON Schema (``contract``) and the Kibana saved objects (``kibana``)."""
