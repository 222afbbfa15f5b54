"""Export of a ``GeneExpressionDataset`` to :class:`anndata.AnnData`."""

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp_sparse

_LIBRARY_ATTRIBUTES = ("local_means", "local_vars")


class ExportMixin:
    """Conversion to other in-memory formats."""

    def to_anndata(self) -> anndata.AnnData:
        """Export to an :class:`anndata.AnnData` (a copy; sparse ``X`` stays sparse).

        ``obs`` holds ``batch_indices``, ``labels`` and, when ``cell_types`` names
        every label, a categorical ``cell_types`` column; ``var`` is indexed by ``gene_names``.
        Other 1-D cell (gene) attributes become ``obs`` (``var``) columns and cell
        measurements become ``obsm`` entries with their column names in ``uns``.
        :class:`scvi.dataset.AnnDatasetFromAnnData` reads the result back.
        """
        if self.X is None:
            raise ValueError("The dataset is empty; populate it before exporting.")
        labels = self.labels.ravel().astype(np.int64)
        obs = pd.DataFrame(
            {
                "batch_indices": self.batch_indices.ravel().astype(np.int64),
                "labels": labels,
            },
            index=pd.Index([str(i) for i in range(self.nb_cells)]),
        )
        if self.cell_types is not None and labels.max() < len(self.cell_types):
            names = np.asarray(self.cell_types).astype(str)
            if len(np.unique(names)) == len(names):
                obs["cell_types"] = pd.Categorical.from_codes(labels, categories=names)
            else:
                obs["cell_types"] = pd.Categorical(names[labels])
        obsm, uns = {}, {}
        skipped = {"batch_indices", "labels", *_LIBRARY_ATTRIBUTES}
        for name in sorted(self.cell_attribute_names - skipped):
            value = getattr(self, name)
            if name in self.cell_measurements_columns:
                obsm[name] = value.copy()
                columns_name = self.cell_measurements_columns[name]
                uns[columns_name] = np.asarray(getattr(self, columns_name))
            elif not sp_sparse.issparse(value) and value.ndim == 1:
                obs[name] = value
            elif not sp_sparse.issparse(value) and value.shape[1:] == (1,):
                obs[name] = value.ravel()
        if self.gene_names is not None:
            var_names = np.asarray(self.gene_names).astype(str)
        else:
            var_names = np.arange(self.nb_genes).astype(str)
        var = pd.DataFrame(index=pd.Index(var_names))
        for name in sorted(self.gene_attribute_names - {"gene_names"}):
            value = np.asarray(getattr(self, name))
            if value.ndim == 1:
                var[name] = value
        return anndata.AnnData(X=self.X.copy(), obs=obs, var=var, obsm=obsm, uns=uns)
